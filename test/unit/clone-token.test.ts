import type { Probot } from "probot";
import { octokitGitHubFactory } from "../../src/github/octokit-github.js";

/** A Probot whose App client mints installation tokens (counted), each answered when `answer` is called. */
function probotMinting() {
  const minted: { installation: number; answer: (ok: boolean) => void }[] = [];
  let serial = 0;
  const app = {
    rest: {
      apps: {
        createInstallationAccessToken: ({ installation_id }: { installation_id: number }) =>
          new Promise((resolve, reject) => {
            minted.push({
              installation: installation_id,
              answer: (ok) => (ok ? resolve({ data: { token: `ghs_${++serial}`, expires_at: new Date(Date.now() + 3_600_000).toISOString() } }) : reject(new Error("GitHub is down"))),
            });
          }),
      },
    },
  };
  const probot = { auth: async () => app } as unknown as Probot;
  return { probot, minted };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("clone tokens", () => {
  test("callers at once share one mint, later ones the cached token", async () => {
    const { probot, minted } = probotMinting();
    const factory = octokitGitHubFactory(probot, 1);
    const [a, b] = [await factory.forInstallation(7), await factory.forInstallation(7)];
    const first = Promise.all([a.cloneToken(), b.cloneToken(), a.cloneToken()]);
    await settle();
    expect(minted.map((m) => m.installation)).toEqual([7]);
    minted[0]!.answer(true);
    expect(await first).toEqual(["ghs_1", "ghs_1", "ghs_1"]);
    expect(await b.cloneToken()).toBe("ghs_1");
    expect(minted).toHaveLength(1);
  });

  test("each installation mints its own; a failed mint fails its callers and the next call mints again", async () => {
    const { probot, minted } = probotMinting();
    const factory = octokitGitHubFactory(probot, 1);
    const [seven, eight] = [await factory.forInstallation(7), await factory.forInstallation(8)];
    const failing = Promise.allSettled([seven.cloneToken(), seven.cloneToken()]);
    const other = eight.cloneToken();
    await settle();
    expect(minted.map((m) => m.installation)).toEqual([7, 8]);
    minted[0]!.answer(false);
    minted[1]!.answer(true);
    expect((await failing).map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(await other).toBe("ghs_1");
    const again = seven.cloneToken();
    await settle();
    expect(minted.map((m) => m.installation)).toEqual([7, 8, 7]);
    minted[2]!.answer(true);
    expect(await again).toBe("ghs_2");
  });
});
