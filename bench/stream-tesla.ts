/**
 * `bench:stream`'s Tesla feed, run as a child process: a partner's fleet-telemetry server as its MQTT dispatcher
 * publishes (teslamotors/fleet-telemetry datastore/mqtt/mqtt_payload.go): one message per field on
 * `<topic_base>/<VIN>/v/<Field>`, the value JSON-encoded, at QoS 1, to the Mosquitto of this machine. Each vehicle
 * publishes `GpsHeading` once a second, its value the second's number (tenths of a degree), because an MQTT metric
 * carries no time (Fleetwire stamps it with its arrival): the value is how the parent finds out when the reading
 * that reached the snapshot was published (`publishedAtMs[vehicle * seconds + second]`, epoch ms).
 *
 * argv: brokerUrl topicBase vehicles. Messages as in stream-schedule.ts.
 */
import { randomBytes } from 'node:crypto';
import mqtt from 'mqtt';
import { benchVin, paceFeed, type FeedCommand, type FeedPace, type FeedReport } from './stream-schedule.ts';

const parent = process.send?.bind(process) as ((report: FeedReport) => boolean) | undefined;
if (!parent) throw new Error('bench/stream-tesla.ts runs as a child process with an IPC channel');
const [brokerUrl, topicBase, vehiclesText] = process.argv.slice(2);
if (!brokerUrl || !topicBase || !vehiclesText) throw new Error('usage: stream-tesla.ts <brokerUrl> <topicBase> <vehicles>');
const vehicles = Number(vehiclesText);

const client = await mqtt.connectAsync(brokerUrl, { clientId: `fleetwire-bench-${randomBytes(4).toString('hex')}`, clean: true, reconnectPeriod: 1000 });
let pace: FeedPace | undefined;

process.on('message', (command: FeedCommand) => {
  if ('stop' in command) return pace?.stop();
  const { startMs, seconds } = command.start;
  const publishedAtMs = new Array<number>(vehicles * seconds).fill(Number.NaN);
  let sent = 0;
  let lateMs = 0;
  pace = paceFeed(vehicles, seconds, startMs, (v, second) => {
    const now = Date.now();
    lateMs = Math.max(lateMs, now - (startMs + second * 1000 + (v * 1000) / vehicles));
    publishedAtMs[v * seconds + second] = now;
    client.publish(`${topicBase}/${benchVin(v)}/v/GpsHeading`, JSON.stringify((second % 3600) / 10), { qos: 1 }, () => undefined);
    sent += 1;
  });
  void pace.done.then(() => parent({ done: { sent, lateMs, publishedAtMs } }));
});
process.on('disconnect', () => {
  void client.endAsync(true).finally(() => process.exit(0));
});
parent({ ready: { url: `${brokerUrl}/${topicBase}` } });
