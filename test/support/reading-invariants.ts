/**
 * The physical invariants every canonical reading must satisfy, whichever provider mapping produced it: a known
 * signal, a value the catalogue accepts, an observed time that is a real instant and not in the far future.
 * Every provider's mapping tests run their output through this.
 */
import { expect } from 'vitest';
import { checkSignalValue } from '../../src/canonical/signals.ts';
import { externalDeviceIdSchema, parseTimestamp } from '../../src/canonical/update.ts';
import type { DeviceReadings } from '../../src/providers/poll-adapter.ts';

export function expectValidReadings(devices: readonly DeviceReadings[], options: { notAfterMs?: number } = {}): void {
  const notAfter = options.notAfterMs ?? Date.now() + 120_000;
  for (const device of devices) {
    const id = externalDeviceIdSchema.safeParse(device.externalDeviceId);
    expect(id.success ? 'ok' : id.error.issues[0]?.message, `external device id ${JSON.stringify(device.externalDeviceId)}`).toBe('ok');
    for (const reading of device.readings) {
      const check = checkSignalValue(reading.signal, reading.value);
      expect(check.ok ? 'ok' : `${check.reason}: ${check.detail}`, `${device.externalDeviceId} ${reading.signal}`).toBe('ok');
      const observedMs = parseTimestamp(reading.observedAt);
      expect(observedMs, `${reading.signal} observedAt ${reading.observedAt}`).toBeDefined();
      expect(observedMs!, `${reading.signal} observedAt ${reading.observedAt} is in the future`).toBeLessThanOrEqual(notAfter);
      expect(reading.observedAt, 'observedAt is UTC RFC 3339').toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
    }
  }
}
