/**
 * A Traccar connection's options as the contract checks them, the way core does when a connection is created or
 * changed (checkOptions): defaults applied, every bad field refused with its path, and what the sources become.
 */
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../../src/core/errors.ts';
import { checkOptions } from '../../../src/core/registry/connections.ts';
import { optionsSchemaOf } from '../../../src/providers/provider.ts';
import { traccarContract } from '../../../src/providers/traccar/contract.ts';
import { attributeSources, defaultAttributeSources, traccarOptionsSchema } from '../../../src/providers/traccar/options.ts';

describe('traccar connection options', () => {
  it('are the contract of the provider, and default to no attribute mapping beyond Traccar’s own keys', () => {
    expect(optionsSchemaOf(traccarContract)).toBe(traccarOptionsSchema);
    expect(checkOptions('traccar', undefined)).toEqual({ attributes: {} });
    expect(attributeSources(traccarOptionsSchema.parse({}))).toEqual({
      tracker_battery_pct: { attribute: 'batteryLevel', unit: 'percent', scale: 1 },
      odometer_km: { attribute: 'odometer', unit: 'm', scale: 1 },
      ignition: { attribute: 'ignition' },
    });
    expect(defaultAttributeSources).not.toHaveProperty('soc_pct');
    expect(defaultAttributeSources).not.toHaveProperty('charging_state');
  });

  it('apply each unit’s default, Traccar’s: percent, metres, kW', () => {
    const parsed = checkOptions('traccar', {
      attributes: { soc_pct: { attribute: 'evSoc' }, range_km: { attribute: 'evRange' }, charge_power_kw: { attribute: 'p' }, charging_state: { attribute: 'c' } },
    });
    expect(parsed).toEqual({
      attributes: {
        soc_pct: { attribute: 'evSoc', unit: 'percent', scale: 1 },
        range_km: { attribute: 'evRange', unit: 'm', scale: 1 },
        charge_power_kw: { attribute: 'p', unit: 'kW', scale: 1 },
        charging_state: { attribute: 'c' },
      },
    });
  });

  it.each([
    ['an unknown top-level field', { mapping: {} }, '(root)'],
    ['attributes that are not an object', { attributes: [] }, 'attributes'],
    ['a signal that no attribute can carry', { attributes: { location: { attribute: 'x' } } }, 'attributes'],
    ['a signal name that is not in the catalogue', { attributes: { soc: { attribute: 'x' } } }, 'attributes'],
    ['an empty attribute key', { attributes: { soc_pct: { attribute: '' } } }, 'attributes.soc_pct.attribute'],
    ['an attribute key with a control character', { attributes: { soc_pct: { attribute: 'ev\nSoc' } } }, 'attributes.soc_pct.attribute'],
    ['an attribute that is not a string', { attributes: { soc_pct: { attribute: 7 } } }, 'attributes.soc_pct.attribute'],
    ['a unit the signal does not take', { attributes: { soc_pct: { attribute: 'x', unit: 'm' } } }, 'attributes.soc_pct.unit'],
    ['a scale of 0', { attributes: { battery_temp_c: { attribute: 'x', scale: 0 } } }, 'attributes.battery_temp_c.scale'],
    ['a scale that is not a number', { attributes: { odometer_km: { attribute: 'x', scale: '0.001' } } }, 'attributes.odometer_km.scale'],
    ['an unknown field in a source', { attributes: { soc_pct: { attribute: 'x', offset: 3 } } }, 'attributes.soc_pct'],
    ['a charging state that is not one', { attributes: { charging_state: { attribute: 'x', values: { plugged: [1] } } } }, 'attributes.charging_state.values'],
    ['charging values that are objects', { attributes: { charging_state: { attribute: 'x', values: { charging: [{}] } } } }, 'attributes.charging_state.values.charging.0'],
  ])('refuse %s, naming the field', (_what, options, path) => {
    let error: unknown;
    try {
      checkOptions('traccar', options);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(DomainError);
    expect((error as DomainError).code).toBe('invalid_options');
    expect((error as DomainError).message).toContain(`${path}:`);
  });
});
