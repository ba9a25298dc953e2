/** GitHub's limit on a comment's body, an issue's body (characters): the one place it is written. */
export const GITHUB_COMMENT_LIMIT = 65_536;

/** GitHub's limit on a check run's output.summary and output.text. */
export const GITHUB_CHECK_TEXT_LIMIT = 65_535;

/** GitHub's limit on a check run's output.title. */
export const GITHUB_CHECK_TITLE_LIMIT = 255;

/** The most deliveries GET /app/hook/deliveries lists per page. */
export const GITHUB_DELIVERIES_PER_PAGE = 100;

/** How long GitHub keeps a delivery redeliverable ("deliveries from the past 3 days"). */
export const GITHUB_REDELIVERY_MAX_AGE_MS = 3 * 86_400_000;
