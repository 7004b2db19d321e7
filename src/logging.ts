/**
 * Structured JSON logs (pino) with OpenTelemetry semantic-convention field names. Anything that can carry a
 * secret is redacted by path before it is written: authorization headers, provider credentials, tokens.
 */
import pino, { type Logger } from 'pino';

export const redactedPaths = [
  'authorization',
  'headers.authorization',
  '*.headers.authorization',
  'http.request.header.authorization',
  'credentials',
  '*.credentials',
  '*.*.credentials',
  'password',
  '*.password',
  'apiToken',
  '*.apiToken',
  'accessToken',
  '*.accessToken',
  'token',
  '*.token',
  'sessionId',
  '*.sessionId',
  'key',
  '*.key',
];

export function createLogger(options: { level: string; name: string; destination?: pino.DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      name: options.name,
      base: { 'service.name': options.name },
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: redactedPaths, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination,
  );
}

export type { Logger };
