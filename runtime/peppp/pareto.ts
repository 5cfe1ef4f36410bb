/**
 * Memory-error Pareto frontiers (both minimised) and their hypervolume, as PEPPP defines them (README §5).
 */

/**
 * 'peppp': i is on the frontier iff every other point is strictly worse than i in at least one coordinate, so exact
 * duplicates both leave the frontier (PEPPP's code). 'textbook': i is off iff some point is <= in both coordinates
 * and < in one, so duplicates both stay.
 */
export type ParetoRule = 'peppp' | 'textbook';

/**
 * The frontier among the points `ids` (default: all), as indices into `mem`/`err`, sorted by memory ascending (ties by
 * index). NaN entries never join and never dominate. O(n²): n is at most a few hundred configurations.
 */
export function paretoFrontier(mem: ArrayLike<number>, err: ArrayLike<number>, ids?: readonly number[], rule: ParetoRule = 'peppp'): number[] {
  const all = (ids ?? Array.from({ length: mem.length }, (_, i) => i)).filter((i) => !Number.isNaN(mem[i]) && !Number.isNaN(err[i]));
  const front = all.filter((i) => all.every((j) => {
    if (j === i) return true;
    if (rule === 'peppp') return mem[j] > mem[i] || err[j] > err[i];
    const dominates = mem[j] <= mem[i] && err[j] <= err[i] && (mem[j] < mem[i] || err[j] < err[i]);
    return !dominates;
  }));
  return front.sort((a, b) => mem[a] - mem[b] || a - b);
}

/**
 * Hypervolume (area) dominated by a frontier up to the reference point (xRef, yRef): the points are sorted by x
 * first (PEPPP's notebooks paired unsorted memories with sorted errors, bug 2 of §6.7), then
 * sum (xRef − x_i)(y_{i−1} − y_i) with y_0 = yRef. `points` must be a frontier (after sorting, y descends).
 */
export function hypervolume(points: readonly (readonly [number, number])[], ref: readonly [number, number]): number {
  const s = [...points].sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  let area = 0, yPrev = ref[1];
  for (const [x, y] of s) {
    area += (ref[0] - x) * (yPrev - y);
    yPrev = y;
  }
  return area;
}
