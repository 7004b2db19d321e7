/**
 * The dashboard's API types (src/dashboard/api-types.ts) are its own: it is browser code that reads the public API and
 * imports nothing of the server. What keeps them true is this file, which `npm run typecheck` compiles: every answer
 * the API's schemas describe must be assignable to the type the dashboard reads it as, so a field renamed, retyped or
 * dropped on the server fails the typecheck here rather than in a depot's browser.
 */
import type { z } from 'zod';
import type {
  ApiKey,
  ChargingSession,
  Connection,
  CutoverTransition,
  DiscoveredDevice,
  Health,
  HistoryBucket,
  ParityReport,
  Provider,
  Rejection,
  Vehicle,
  Workspace,
} from '../../src/dashboard/api-types.ts';
import type { discoveredDeviceSchema } from '../../src/core/http/routes/discovered-devices.ts';
import type {
  apiKeySchema,
  chargingSessionItemSchema,
  connectionSchema,
  cutoverTransitionSchema,
  historyBucketItemSchema,
  parityReportSchema,
  providerSchema,
  rejectionSchema,
  vehicleSchema,
  workspaceHealthSchema,
  workspaceSchema,
} from '../../src/core/http/schemas.ts';

/** Compiles only when `Answer` (what the API sends) can be read as `Read` (what the dashboard expects). */
type ReadsAs<Answer extends Read, Read> = [Answer, Read];

export type DashboardReadsTheApi = [
  ReadsAs<z.output<typeof workspaceSchema>, Workspace>,
  ReadsAs<z.output<typeof vehicleSchema>, Vehicle>,
  ReadsAs<z.output<typeof workspaceHealthSchema>, Health>,
  ReadsAs<z.output<typeof connectionSchema>, Connection>,
  ReadsAs<z.output<typeof discoveredDeviceSchema>, DiscoveredDevice>,
  ReadsAs<z.output<typeof historyBucketItemSchema>, HistoryBucket>,
  ReadsAs<z.output<typeof chargingSessionItemSchema>, ChargingSession>,
  ReadsAs<z.output<typeof apiKeySchema>, ApiKey>,
  ReadsAs<z.output<typeof providerSchema>, Provider>,
  ReadsAs<z.output<typeof rejectionSchema>, Rejection>,
  ReadsAs<z.output<typeof parityReportSchema>, ParityReport>,
  ReadsAs<z.output<typeof cutoverTransitionSchema>, CutoverTransition>,
];
