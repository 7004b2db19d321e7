/**
 * Readings that cause every kind of vehicle event, step by step: vehicle v's SoC at step n runs up and down between
 * 10 and 90 % in 6 % steps (crossing the default 20 and 80 % thresholds each way), charging on the way up, so each
 * turn is a charging start or stop; each step is observed a second after the last, from `baseMs`.
 */
const phase = (v: number, n: number) => (n * 6 + v * 37) % 160;

export const waveSoc = (v: number, n: number) => (phase(v, n) < 80 ? 10 + phase(v, n) : 170 - phase(v, n));
export const waveCharging = (v: number, n: number) => (phase(v, n) < 80 ? 'charging' : 'not_charging');

export function waveReadings(baseMs: number, v: number, n: number) {
  const observedAt = baseMs + n * 1000;
  return [
    { signal: 'soc_pct', value: waveSoc(v, n), observedAt },
    { signal: 'charging_state', value: waveCharging(v, n), observedAt },
    { signal: 'speed_kph', value: phase(v, n) < 80 ? 0 : (n * 7 + v) % 90, observedAt },
  ];
}
