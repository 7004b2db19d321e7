/**
 * A vehicle's history as one SVG, from the downsampled history (`history?bucket=`): state of charge (the mean of each
 * bucket, with its min..max as a band) on 0..100 with the charge target dashed, and speed (each bucket's maximum)
 * scaled to its own maximum (right axis). Series are held newest first, as the API answers them; the chart spans the
 * chosen range up to now, newest at the right.
 */
import type { HistoryBucket } from './api-types.ts';

export type ChartRange = '24h' | '7d';

/** 5 min buckets draw a day in 288 points, 1 h buckets a week in 168. */
export const chartRanges: Record<ChartRange, { spanMs: number; bucket: '5m' | '1h'; bucketMs: number; label: string }> = {
  '24h': { spanMs: 86_400_000, bucket: '5m', bucketMs: 300_000, label: 'last 24 h' },
  '7d': { spanMs: 7 * 86_400_000, bucket: '1h', bucketMs: 3_600_000, label: 'last 7 days' },
};

/**
 * Folds a reading that arrived by event into its bucket of a series held newest first (a new bucket in front when it
 * is the first of its bucket), and drops buckets that fell out of the range; answers whether the series changed.
 */
export function addReading(buckets: HistoryBucket[], signal: string, t: number, v: number, range: ChartRange, nowMs: number): boolean {
  const { spanMs, bucketMs } = chartRanges[range];
  let changed = false;
  while (buckets.length > 0 && Date.parse(buckets[buckets.length - 1]!.bucketEnd) <= nowMs - spanMs) {
    buckets.pop();
    changed = true;
  }
  if (t < nowMs - spanMs) return changed;
  const start = Math.floor(t / bucketMs) * bucketMs;
  const at = buckets.findIndex((b) => Date.parse(b.bucketStart) <= start);
  const held = at === -1 ? undefined : buckets[at];
  if (held && Date.parse(held.bucketStart) === start) {
    if (t <= Date.parse(held.lastObservedAt)) return changed;
    held.avg = held.avg === null ? v : (held.avg * held.count + v) / (held.count + 1);
    held.count += 1;
    held.min = held.min === null ? v : Math.min(held.min, v);
    held.max = held.max === null ? v : Math.max(held.max, v);
    held.last = v;
    held.lastObservedAt = new Date(t).toISOString();
    return true;
  }
  const observed = new Date(t).toISOString();
  const fresh: HistoryBucket = { signal, bucketStart: new Date(start).toISOString(), bucketEnd: new Date(start + bucketMs).toISOString(), count: 1, firstObservedAt: observed, lastObservedAt: observed, min: v, max: v, avg: v, last: v };
  buckets.splice(at === -1 ? buckets.length : at, 0, fresh);
  return true;
}

const svgNs = 'http://www.w3.org/2000/svg';

function svg(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const node = document.createElementNS(svgNs, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

const middle = (b: HistoryBucket) => (Date.parse(b.bucketStart) + Date.parse(b.bucketEnd)) / 2;

export function chart(soc: readonly HistoryBucket[], speed: readonly HistoryBucket[], range: ChartRange, nowMs: number, targetPct: number): SVGElement {
  const width = 360;
  const height = 220;
  const pad = { left: 30, right: 36, top: 10, bottom: 22 };
  const { spanMs, label } = chartRanges[range];
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `state of charge and speed, ${label}` });
  if (soc.length === 0 && speed.length === 0) {
    root.append(svg('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle' }, `no readings in the ${label}`));
    return root;
  }
  const t0 = nowMs - spanMs;
  const t1 = nowMs;
  const maxSpeed = Math.max(10, ...speed.map((b) => b.max ?? 0));
  const x = (t: number) => pad.left + ((Math.max(t0, Math.min(t1, t)) - t0) / (t1 - t0)) * (width - pad.left - pad.right);
  const y = (fraction: number) => height - pad.bottom - Math.max(0, Math.min(1, fraction)) * (height - pad.top - pad.bottom);
  for (const level of [0, 50, 100]) {
    root.append(svg('text', { x: pad.left - 4, y: y(level / 100) + 3, 'text-anchor': 'end' }, `${level}`));
    root.append(svg('line', { class: 'axis', x1: pad.left, x2: width - pad.right, y1: y(level / 100), y2: y(level / 100) }));
  }
  root.append(svg('line', { class: 'target', x1: pad.left, x2: width - pad.right, y1: y(targetPct / 100), y2: y(targetPct / 100) }));
  root.append(svg('text', { x: width - pad.right + 4, y: y(1) + 3 }, `${Math.round(maxSpeed)}`));
  root.append(svg('text', { x: width - pad.right + 4, y: y(0) + 3 }, '0'));
  const tick = (t: number) => new Date(t).toLocaleString([], range === '24h' ? { hour: '2-digit', minute: '2-digit' } : { weekday: 'short', day: 'numeric' });
  for (const t of [t0, (t0 + t1) / 2, t1]) root.append(svg('text', { x: x(t), y: height - 6, 'text-anchor': 'middle' }, tick(t)));
  // Drawn oldest to newest, left to right; the series stay newest first.
  const ordered = (series: readonly HistoryBucket[]) => [...series].filter((b) => b.avg !== null).sort((a, b) => middle(a) - middle(b));
  const socOrdered = ordered(soc);
  if (socOrdered.length > 0) {
    const upper = socOrdered.map((b) => `${x(middle(b)).toFixed(1)},${y(b.max! / 100).toFixed(1)}`);
    const lower = socOrdered.map((b) => `${x(middle(b)).toFixed(1)},${y(b.min! / 100).toFixed(1)}`).reverse();
    root.append(svg('polygon', { class: 'soc-band', points: [...upper, ...lower].join(' ') }));
    root.append(svg('polyline', { class: 'soc-line', points: socOrdered.map((b) => `${x(middle(b)).toFixed(1)},${y(b.avg! / 100).toFixed(1)}`).join(' ') }));
  }
  const speedOrdered = ordered(speed);
  if (speedOrdered.length > 0) {
    root.append(svg('polyline', { class: 'speed-line', points: speedOrdered.map((b) => `${x(middle(b)).toFixed(1)},${y(b.max! / maxSpeed).toFixed(1)}`).join(' ') }));
  }
  return root;
}
