/**
 * The map's tile settings (FLEETWIRE_MAP_TILE_URL, FLEETWIRE_MAP_TILE_ATTRIBUTION): parsed with the rest of the
 * configuration, a template Leaflet can fill in or a message that says what one looks like, and the content security
 * policy source the dashboard derives from it.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { tileImageSource } from '../../src/core/http/routes/dashboard.ts';

const dir = mkdtempSync(join(tmpdir(), 'fleetwire-map-config-'));

describe('map tile configuration', () => {
  it('is off unless configured, and takes a tile template with its credit', () => {
    expect(loadConfig({ FLEETWIRE_DATA_DIR: dir }).dashboard).toEqual({ tileUrl: undefined, tileAttribution: undefined });
    const tileUrl = 'https://{s}.tile.example.org/{z}/{x}/{y}.png';
    expect(loadConfig({ FLEETWIRE_DATA_DIR: dir, FLEETWIRE_MAP_TILE_URL: tileUrl, FLEETWIRE_MAP_TILE_ATTRIBUTION: '© Example' }).dashboard).toEqual({ tileUrl, tileAttribution: '© Example' });
    expect(tileImageSource(tileUrl)).toBe('https://*.tile.example.org');
    expect(tileImageSource('https://tiles.depot.internal:8443/osm/{z}/{x}/{y}.png?key=public')).toBe('https://tiles.depot.internal:8443');
  });

  it('refuses what is not a tile template, naming the variable', () => {
    for (const bad of ['tiles.example.org/{z}/{x}/{y}.png', 'ftp://tiles.example.org/{z}/{x}/{y}.png', 'https://tiles.example.org/{z}/{x}.png', 'https://a{s}.example.org/{z}/{x}/{y}.png', 'https://user:pw@tiles.example.org/{z}/{x}/{y}.png']) {
      expect(() => loadConfig({ FLEETWIRE_DATA_DIR: dir, FLEETWIRE_MAP_TILE_URL: bad }), bad).toThrow(/FLEETWIRE_MAP_TILE_URL: must be an http\(s\) tile URL template/);
    }
  });
});
