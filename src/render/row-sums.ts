/**
 * The length of a table's first rows together, for a fitting that tries
 * several row counts: `sumOf(k)` is the length of rows 0..k-1, each measured
 * once (`lengthOf(j)`) and only while the rows so far stay within `room`;
 * undefined when they outgrow it before the k-th (no row past that is ever
 * measured: a table of thousands of rows keeps a few hundred).
 */
export function rowSums(room: number, lengthOf: (row: number) => number): (k: number) => number | undefined {
  // sums[j]: the length of the first j rows.
  const sums = [0];
  return (k) => {
    while (sums.length <= k && sums[sums.length - 1]! <= room) sums.push(sums[sums.length - 1]! + lengthOf(sums.length - 1));
    return sums.length > k ? sums[k] : undefined;
  };
}
