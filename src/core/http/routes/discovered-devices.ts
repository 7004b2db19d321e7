/**
 * Onboarding from what providers report (docs/API.md, Discovered devices): the devices nobody bound yet, binding
 * them to new or existing vehicles (one, or all that match a rule), ignoring them, and vehicles imported from CSV.
 * Access `workspace`: the admin token, or the workspace's own key (a depot onboards its own vehicles).
 */
import { z } from 'zod';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { externalDeviceIdSchema, safeName, safeText } from '../../../canonical/update.ts';
import type { Database } from '../../db/database.ts';
import {
  bindDiscoveredDevice,
  bindMatching,
  discoveredStatuses,
  listDiscoveredDevices,
  setDiscoveredStatus,
} from '../../registry/discovered-devices.ts';
import { ImportRefused, importRowLimit, importVehicles } from '../../registry/vehicle-import.ts';
import type { BindingOptions } from '../../registry/vehicles.ts';
import { getWorkspace } from '../../registry/workspaces.ts';
import { CsvError, parseCsv } from '../csv.ts';
import { HttpProblem, problem, problemContentType, problemResponses, problemSchema } from '../problem.ts';
import { idParam, page, wsParams } from '../schemas.ts';
import type { TypedApp } from '../typed-app.ts';

/** A CSV import's body: about 5,000 rows of name, VIN, connection and device id fit well within it. */
export const csvBodyLimit = 1024 * 1024;

const signalSampleSchema = z.record(z.string(), z.object({ value: z.unknown(), observedAt: z.string() }));

export const discoveredDeviceSchema = z.object({
  connectionId: z.string(),
  provider: z.string(),
  externalId: z.string(),
  status: z.enum(discoveredStatuses),
  firstSeenAt: z.string(),
  lastSeenAt: z.string(),
  readingCount: z.number().int().describe('Readings the device sent while no vehicle was bound to it'),
  ignoredCount: z.number().int().describe('Of those, the readings dropped while it was ignored'),
  sample: signalSampleSchema.describe('The newest value of each catalogue signal it sent'),
  vehicleId: z.string().nullable(),
});

const discoveredQuery = z.object({
  status: z.enum(discoveredStatuses).default('pending'),
  connectionId: idParam.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(2000).optional(),
});

const deviceBody = z.object({ connectionId: idParam, externalId: externalDeviceIdSchema }).strict();

const bindBody = deviceBody
  .extend({
    vehicleId: idParam.optional().describe('An existing vehicle to bind the device to'),
    vehicle: z
      .object({ name: safeName(200), vin: safeName(64).toUpperCase().optional() })
      .strict()
      .optional()
      .describe('A new vehicle to create for the device'),
  })
  .strict()
  .refine((b) => (b.vehicleId === undefined) !== (b.vehicle === undefined), 'give exactly one of vehicleId and vehicle');

const bindMatchingBody = z
  .object({
    connectionId: idParam,
    externalIdPrefix: safeText(256).optional(),
    status: z.literal('pending').optional(),
    nameTemplate: safeText(200).optional().describe('The new vehicles\' names; {externalId} and {provider} are replaced. Default {externalId}'),
    dryRun: z.boolean().optional(),
  })
  .strict();

const bindMatchingAnswer = z.object({
  bound: z.array(z.object({ externalId: z.string(), vehicleId: z.string().nullable().describe('null on a dry run') })),
  skipped: z.array(z.object({ externalId: z.string(), reason: z.string() })),
  remaining: z.number().int().describe('Matching pending devices left for another call (at most 1,000 are bound per call)'),
});

const importProblemSchema = problemSchema.extend({
  errors: z
    .array(z.object({ row: z.number().int(), field: z.string().nullable(), reason: z.string(), detail: z.string() }))
    .optional()
    .describe("Every row's errors (row: the table's line, the header being line 1)"),
});

export function registerDiscoveredDeviceRoutes(app: TypedApp, { db, binding }: { db: Database; binding: BindingOptions }): void {
  app.get(
    '/v1/workspaces/:ws/discovered-devices',
    {
      config: { access: 'workspace' },
      schema: {
        summary: 'Devices providers report that no vehicle of the workspace is bound to (or that were ignored or bound from here), most recently seen first',
        tags: ['discovered devices'],
        params: wsParams,
        querystring: discoveredQuery,
        response: { 200: page(discoveredDeviceSchema), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      await getWorkspace(db, request.params.ws);
      return listDiscoveredDevices(db, request.params.ws, request.query);
    },
  );

  app.post(
    '/v1/workspaces/:ws/discovered-devices/bind',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Bind a discovered device to an existing vehicle (vehicleId) or to a new one (vehicle)',
        tags: ['discovered devices'],
        params: wsParams,
        body: bindBody,
        response: { 201: z.object({ vehicleId: z.string(), created: z.boolean() }), ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => reply.code(201).send(await bindDiscoveredDevice(db, request.params.ws, request.body, binding)),
  );

  for (const [action, status] of [['ignore', 'ignored'], ['unignore', 'pending']] as const) {
    app.post(
      `/v1/workspaces/:ws/discovered-devices/${action}`,
      {
        config: { access: 'admin' },
        schema: {
          summary:
            action === 'ignore'
              ? "Ignore a discovered device: its updates are dropped before ingest, counted on its row, never stored as rejections"
              : 'Take back an ignore: the device is pending again, its updates refused unknown_device until it is bound',
          tags: ['discovered devices'],
          params: wsParams,
          body: deviceBody,
          response: { 200: z.object({ status: z.literal(status) }), ...problemResponses(400, 401, 403, 404, 409) },
        },
      },
      async (request) => {
        await setDiscoveredStatus(db, request.params.ws, request.body, status);
        return { status };
      },
    );
  }

  app.post(
    '/v1/workspaces/:ws/discovered-devices/bind-matching',
    {
      config: { access: 'admin' },
      schema: {
        summary: "One new vehicle for each pending device of a connection whose external id starts with the prefix",
        tags: ['discovered devices'],
        params: wsParams,
        body: bindMatchingBody,
        response: { 200: bindMatchingAnswer, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      await getWorkspace(db, request.params.ws);
      return bindMatching(db, request.params.ws, request.body, binding);
    },
  );

  // The CSV body is read as text in this route's scope only: every other route still takes JSON alone.
  void app.register(async (scope) => {
    scope.addContentTypeParser('text/csv', { parseAs: 'string', bodyLimit: csvBodyLimit }, (_request, text, done) => done(null, text));
    scope.withTypeProvider<ZodTypeProvider>().post(
      // `::` is a literal colon: the path is /v1/workspaces/{ws}/vehicles:import.
      '/v1/workspaces/:ws/vehicles::import',
      {
        config: { access: 'admin' },
        bodyLimit: csvBodyLimit,
        preValidation: async (request) => {
          if (!/^text\/csv\b/i.test(request.headers['content-type'] ?? '')) throw new HttpProblem(415, 'unsupported_media_type', 'send the table as text/csv');
        },
        schema: {
          summary: `Vehicles from a CSV table (header name,vin,connection,external_id; at most ${importRowLimit} rows): all created, or none and every row's errors`,
          tags: ['vehicles'],
          params: wsParams,
          body: z.string().describe('text/csv'),
          response: {
            201: z.object({ created: z.array(z.object({ row: z.number().int(), vehicleId: z.string() })) }),
            422: importProblemSchema,
            ...problemResponses(400, 401, 403, 404, 413, 415),
          },
        },
      },
      async (request, reply) => {
        const { ws } = request.params;
        const instance = request.url.split('?')[0];
        try {
          const records = parseCsv(request.body);
          return reply.code(201).send({ created: await importVehicles(db, ws, records, binding) });
        } catch (error) {
          if (error instanceof CsvError) {
            return reply
              .code(422)
              .type(problemContentType)
              .send({ ...problem(422, 'invalid_csv', error.message, { instance }), errors: [{ row: error.line, field: null, reason: 'invalid_csv', detail: error.message }] });
          }
          if (!(error instanceof ImportRefused)) throw error;
          return reply.code(422).type(problemContentType).send({ ...problem(422, 'import_refused', error.message, { instance }), errors: error.errors });
        }
      },
    );
  });
}
