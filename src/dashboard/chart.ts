/** A vehicle's last 24 h as one SVG: state of charge on 0..100, speed scaled to its own maximum (right axis). */

export interface Point {
  t: number;
  v: number;
}

export const chartSpanMs = 86_400_000;

/**
 * Adds a reading that arrived by event to a series loaded from history, in time order, and drops what fell out of
 * the span; answers whether the series changed.
 */
export function addPoint(points: Point[], point: Point, nowMs: number): boolean {
  let changed = false;
  while (points.length > 0 && points[0]!.t < nowMs - chartSpanMs) {
    points.shift();
    changed = true;
  }
  if (point.t < nowMs - chartSpanMs || points.some((p) => p.t === point.t)) return changed;
  let at = points.length;
  while (at > 0 && points[at - 1]!.t > point.t) at -= 1;
  points.splice(at, 0, point);
  return true;
}

const svgNs = 'http://www.w3.org/2000/svg';

function svg(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const node = document.createElementNS(svgNs, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function chart(soc: Point[], speed: Point[]): SVGElement {
  const width = 360;
  const height = 220;
  const pad = { left: 30, right: 36, top: 10, bottom: 22 };
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'state of charge and speed over time' });
  const all = [...soc, ...speed];
  if (all.length === 0) {
    root.append(svg('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle' }, 'no readings in the last 24 h'));
    return root;
  }
  const t0 = Math.min(...all.map((p) => p.t));
  const t1 = Math.max(...all.map((p) => p.t), t0 + 60_000);
  const maxSpeed = Math.max(10, ...speed.map((p) => p.v));
  const x = (t: number) => pad.left + ((t - t0) / (t1 - t0)) * (width - pad.left - pad.right);
  const y = (fraction: number) => height - pad.bottom - fraction * (height - pad.top - pad.bottom);
  root.append(svg('line', { class: 'axis', x1: pad.left, x2: width - pad.right, y1: y(0), y2: y(0) }));
  for (const level of [0, 50, 100]) {
    root.append(svg('text', { x: pad.left - 4, y: y(level / 100) + 3, 'text-anchor': 'end' }, `${level}`));
    root.append(svg('line', { class: 'axis', x1: pad.left, x2: width - pad.right, y1: y(level / 100), y2: y(level / 100) }));
  }
  root.append(svg('text', { x: width - pad.right + 4, y: y(1) + 3 }, `${Math.round(maxSpeed)}`));
  root.append(svg('text', { x: width - pad.right + 4, y: y(0) + 3 }, '0'));
  for (const t of [t0, (t0 + t1) / 2, t1]) {
    root.append(svg('text', { x: x(t), y: height - 6, 'text-anchor': 'middle' }, new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })));
  }
  const line = (points: Point[], scale: (v: number) => number, cls: string) => {
    if (points.length === 0) return;
    root.append(svg('polyline', { class: cls, points: points.map((p) => `${x(p.t).toFixed(1)},${y(scale(p.v)).toFixed(1)}`).join(' ') }));
  };
  line(soc, (v) => v / 100, 'soc-line');
  line(speed, (v) => v / maxSpeed, 'speed-line');
  return root;
}
