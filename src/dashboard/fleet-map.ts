/**
 * The fleet on a map (Leaflet): every vehicle with a location as a circle marker coloured by its status; a click
 * opens its panel. Tiles come from the deployment's tile URL template (FLEETWIRE_MAP_TILE_URL, told to the page by
 * /dashboard-config.json). With none configured, or none reachable, the markers draw on a plain background and a note
 * says so: the positions are ours, only the picture under them is the tile server's.
 */
import * as L from 'leaflet';
import type { Vehicle, VehicleStatus } from './api-types.ts';
import { $, setText } from './dom.ts';

export interface MapConfig {
  tileUrl: string | null;
  attribution: string | null;
}

export interface FleetMap {
  /** After a full load: markers for the located vehicles, the others' dropped; framed until the operator moves the map. */
  load(vehicles: readonly Vehicle[]): void;
  /** One vehicle moved or changed status. */
  refresh(vehicle: Vehicle): void;
  select(vehicleId: string | null): void;
  /** The map's box changed size (it was hidden, the layout moved). */
  resize(): void;
}

const statusColours: Record<VehicleStatus, string> = { fresh: '#1f9d55', stale: '#d64545', silent: '#7a869a', never: '#b0b7c3' };

function positionOf(vehicle: Vehicle): L.LatLngTuple | undefined {
  const value = vehicle.signals.location?.value as { lat?: unknown; lon?: unknown } | undefined;
  return typeof value?.lat === 'number' && typeof value.lon === 'number' ? [value.lat, value.lon] : undefined;
}

export function createFleetMap(container: HTMLElement, config: MapConfig, onSelect: (vehicleId: string) => void): FleetMap {
  const map = L.map(container, { worldCopyJump: true, attributionControl: true, zoomSnap: 0.5 }).setView([30, 0], 2);
  // The library credits itself with a link and a flag image; the tile provider's own credit is what must show.
  map.attributionControl.setPrefix(false);
  const note = $('map-note');
  if (config.tileUrl) {
    const tiles = L.tileLayer(config.tileUrl, { maxZoom: 19, ...(config.attribution ? { attribution: escapeText(config.attribution) } : {}) });
    let loaded = false;
    tiles.on('tileload', () => {
      loaded = true;
      note.hidden = true;
    });
    tiles.on('tileerror', () => {
      if (loaded) return;
      setText(note, 'Map tiles are unreachable: vehicles are drawn on a plain background.');
      note.hidden = false;
    });
    tiles.addTo(map);
  } else {
    setText(note, 'No map tiles configured (FLEETWIRE_MAP_TILE_URL): vehicles are drawn on a plain background.');
    note.hidden = false;
  }
  const markers = new Map<string, { marker: L.CircleMarker; vehicle: Vehicle }>();
  let selected: string | null = null;
  // The map frames the fleet until the operator moves it; then it stays where they put it.
  let framing = true;
  for (const gesture of ['mousedown', 'wheel', 'touchstart', 'keydown'] as const) container.addEventListener(gesture, () => (framing = false), { passive: true });
  const frame = () => {
    if (!framing || markers.size === 0) return;
    map.fitBounds(L.latLngBounds([...markers.values()].map(({ marker }) => marker.getLatLng())), { padding: [28, 28], maxZoom: 13 });
  };
  // Leaflet measures its box only when the window resizes: the layout moving under it (a scroll bar, the panel) too.
  new ResizeObserver(() => {
    map.invalidateSize();
    frame();
  }).observe(container);

  function style(vehicle: Vehicle): L.PathOptions {
    const chosen = vehicle.id === selected;
    return { radius: chosen ? 10 : 7, weight: chosen ? 3 : 1.5, color: chosen ? '#1d2430' : '#ffffff', fillColor: statusColours[vehicle.freshness.status], fillOpacity: 0.95 } as L.PathOptions;
  }

  function place(vehicle: Vehicle): void {
    const at = positionOf(vehicle);
    const held = markers.get(vehicle.id);
    if (!at) {
      held?.marker.remove();
      markers.delete(vehicle.id);
      return;
    }
    if (held) {
      held.vehicle = vehicle;
      held.marker.setLatLng(at).setStyle(style(vehicle));
      held.marker.setTooltipContent(escapeText(`${vehicle.name} (${vehicle.freshness.status})`));
    } else {
      const marker = L.circleMarker(at, { ...style(vehicle), className: 'vehicle-marker' }).addTo(map);
      marker.bindTooltip(escapeText(`${vehicle.name} (${vehicle.freshness.status})`));
      marker.on('click', () => onSelect(vehicle.id));
      markers.set(vehicle.id, { marker, vehicle });
    }
    const path = markers.get(vehicle.id)!.marker.getElement();
    if (path) {
      path.setAttribute('data-vehicle', vehicle.id);
      path.setAttribute('data-status', vehicle.freshness.status);
      path.setAttribute('data-testid', 'map-marker');
    }
  }

  return {
    load(vehicles) {
      const ids = new Set(vehicles.map((v) => v.id));
      for (const [id, { marker }] of markers) {
        if (ids.has(id)) continue;
        marker.remove();
        markers.delete(id);
      }
      for (const vehicle of vehicles) place(vehicle);
      frame();
    },
    refresh: place,
    select(vehicleId) {
      const before = selected;
      selected = vehicleId;
      for (const id of [before, vehicleId]) {
        const held = id ? markers.get(id) : undefined;
        if (held) held.marker.setStyle(style(held.vehicle));
      }
      const chosen = vehicleId ? markers.get(vehicleId) : undefined;
      if (chosen) chosen.marker.bringToFront();
    },
    resize() {
      map.invalidateSize();
    },
  };
}

/** Leaflet puts tooltip and attribution strings in as HTML: what comes from names and config goes in as text. */
function escapeText(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
