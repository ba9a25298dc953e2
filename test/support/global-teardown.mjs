export default async function globalTeardown() {
  await globalThis.__plangateEmbedded?.stop();
}
