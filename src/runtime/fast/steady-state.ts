/**
 * Steady-state output analysis of a series of chunk times (the interval between consecutive chunk
 * completions), for the statistical fast path: MSER-5 warm-up truncation (White 1997), then
 * non-overlapping batch means with a Student-t interval. Pure functions; no model state.
 */

/** MSER-5: the truncation point (in observations, a multiple of 5) minimising the MSER statistic over the first half. */
export function mser5(xs: ArrayLike<number>): number {
  const b = Math.floor(xs.length / 5);
  if (b < 4) return 0;
  const means = new Float64Array(b);
  for (let i = 0; i < b; i++) {
    let s = 0;
    for (let j = 0; j < 5; j++) s += xs[i * 5 + j];
    means[i] = s / 5;
  }
  // Suffix sums let every candidate d be scored in O(1).
  const suf = new Float64Array(b + 1);
  const suf2 = new Float64Array(b + 1);
  for (let i = b - 1; i >= 0; i--) {
    suf[i] = suf[i + 1] + means[i];
    suf2[i] = suf2[i + 1] + means[i] * means[i];
  }
  let best = 0;
  let bestScore = Infinity;
  for (let d = 0; d <= Math.floor(b / 2); d++) {
    const n = b - d;
    const mean = suf[d] / n;
    const ss = suf2[d] - n * mean * mean;
    const score = Math.max(0, ss) / (n * n);
    if (score < bestScore) {
      bestScore = score;
      best = d;
    }
  }
  return best * 5;
}

export interface BatchMeans {
  /** Observations used (after truncation; a whole number of batches, the most recent ones). */
  used: number;
  batches: number;
  mean: number;
  /** Standard error of the mean, from the batch means. */
  stdError: number;
  /** Variance per observation including autocorrelation (batch size x variance of batch means). */
  varPerObservation: number;
  /** Half the difference between the means of the first and second halves: a drift (bias) indicator. */
  drift: number;
  /**
   * Range (max - min) of the running sum of deviations from the mean over the observations used. A
   * series that cycles without repeating (deterministic phases that realign only after hundreds of
   * chunks) has batch means that agree closely, yet a jump lands at an unknown phase of the cycle,
   * and the window's mean is off by up to this range over its length: the batch variance sees neither.
   */
  phaseRange: number;
}

/** Non-overlapping batch means over xs[from..]: `batches` batches of equal size (a multiple of `sizeMultipleOf`) taken from the end. */
export function batchMeans(xs: ArrayLike<number>, from: number, batches: number, sizeMultipleOf = 1): BatchMeans | null {
  const n = xs.length - from;
  // A batch of a merged series of k moves holds whole rounds (k completions), or batch sums swing by
  // the one long or short interval a round boundary puts in or leaves out.
  const size = Math.floor(n / batches / sizeMultipleOf) * sizeMultipleOf;
  if (size < 1 || batches < 2) return null;
  const start = xs.length - size * batches;
  const bm = new Float64Array(batches);
  let total = 0;
  for (let k = 0; k < batches; k++) {
    let s = 0;
    for (let i = 0; i < size; i++) s += xs[start + k * size + i];
    bm[k] = s / size;
    total += s;
  }
  const mean = total / (size * batches);
  let v = 0;
  for (let k = 0; k < batches; k++) v += (bm[k] - mean) ** 2;
  v /= batches - 1;
  const half = Math.floor(batches / 2);
  let a = 0;
  let c = 0;
  for (let k = 0; k < half; k++) a += bm[k];
  for (let k = batches - half; k < batches; k++) c += bm[k];
  let run = 0;
  let lo = 0;
  let hi = 0;
  for (let i = start; i < xs.length; i++) {
    run += xs[i] - mean;
    if (run < lo) lo = run;
    if (run > hi) hi = run;
  }
  return { used: size * batches, batches, mean, stdError: Math.sqrt(v / batches), varPerObservation: v * size, drift: Math.abs(a - c) / half / 2, phaseRange: hi - lo };
}

/**
 * Two-sided Student-t quantile for confidence `conf` (e.g. 0.997) and `dof` degrees of freedom,
 * by bisection on the regularized incomplete beta function (exact to ~1e-10; no table).
 */
export function tQuantile(conf: number, dof: number): number {
  const tail = (1 - conf) / 2;
  let lo = 0;
  let hi = 1e3;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    const p = 0.5 * incompleteBeta(dof / (dof + mid * mid), dof / 2, 0.5); // P(T > mid)
    if (p > tail) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

function logGamma(x: number): number {
  const g = [676.5203681218851, -1259.1392167224028, 771.3234287776531, -176.6150291621406, 12.507343278686905, -0.13857109526572012, 9.984369578019572e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  x -= 1;
  let a = 0.9999999999998099;
  const t = x + 7.5;
  for (let i = 0; i < 8; i++) a += g[i] / (x + i + 1);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Regularized incomplete beta I_x(a, b), continued fraction (Numerical Recipes' betacf). */
function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  if (x > (a + 1) / (a + b + 2)) return 1 - incompleteBeta(1 - x, b, a);
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < 1e-300) d = 1e-300;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < 1e-300) d = 1e-300;
    c = 1 + aa / c;
    if (Math.abs(c) < 1e-300) c = 1e-300;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < 1e-300) d = 1e-300;
    c = 1 + aa / c;
    if (Math.abs(c) < 1e-300) c = 1e-300;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-14) break;
  }
  return (front * h) / a;
}
