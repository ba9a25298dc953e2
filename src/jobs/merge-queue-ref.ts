/** GitHub's merge queue branches: gh-readonly-queue/<base>/pr-<number>-<head sha>. */
const QUEUE_REF = /^(?:refs\/heads\/)?gh-readonly-queue\/.+\/pr-(\d+)-[0-9a-f]{40}$/;

/** The pull request a merge queue branch stands for, or undefined for any other ref. */
export function queuedPullNumber(headRef: string): number | undefined {
  const match = QUEUE_REF.exec(headRef);
  return match ? Number(match[1]) : undefined;
}
