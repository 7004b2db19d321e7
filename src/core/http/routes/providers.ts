/**
 * The providers core can connect (admin), from the registry: what a client needs to offer a connection form
 * (transports, whether a base URL must be given, the credential and option fields by name). Nothing of any
 * connection, and no credential value, is in it.
 */
import { z } from 'zod';
import { baseUrlSchemesOf, optionsSchemaOf, type ProviderConnectionContract } from '../../../providers/provider.ts';
import { providerContracts } from '../../../providers/registry.ts';
import { problemResponses } from '../problem.ts';
import { providerSchema } from '../schemas.ts';
import type { TypedApp } from '../typed-app.ts';

/** The top-level fields of a provider's object schema, and which of them are required (as its JSON Schema says). */
function fieldsOf(schema: z.ZodType): { fields: string[]; required: string[] } {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, unknown>; required?: string[] };
  return { fields: Object.keys(json.properties ?? {}), required: json.required ?? [] };
}

export function describeProvider(contract: ProviderConnectionContract): z.infer<typeof providerSchema> {
  return {
    name: contract.name,
    title: contract.title,
    // One transport per provider today; a list, so a provider that is both polled and streamed needs no new field.
    transports: [contract.transport],
    baseUrl: { required: contract.defaultBaseUrl === undefined, default: contract.defaultBaseUrl ?? null, schemes: [...baseUrlSchemesOf(contract)] },
    credentials: fieldsOf(contract.credentials),
    options: fieldsOf(optionsSchemaOf(contract)).fields,
  };
}

export function registerProviderRoutes(app: TypedApp): void {
  // The registry does not change while core runs: described once.
  const items = providerContracts.map(describeProvider);
  app.get(
    '/v1/providers',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'The providers a connection can be made to, with their transports and the fields their credentials and options take',
        tags: ['connections'],
        response: { 200: z.object({ items: z.array(providerSchema) }), ...problemResponses(401, 403) },
      },
    },
    async () => ({ items }),
  );
}
