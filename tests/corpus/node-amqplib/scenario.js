'use strict';
// One service of the node-amqplib scenario per process: `node scenario.js <role>`.
// Every service logs what it did (publishes, deliveries, outcomes, broker flags) as JSON
// lines on stdout; make.py derives truth.json from those lines and from the broker, never
// from the spans. `setup` and `inspect` run without tracing (topology, queue depths).

const ROLE = process.argv[2];
const TRACED = !['setup', 'inspect'].includes(ROLE);
const INJECTS = ROLE !== 'warehouse'; // the warehouse publishes without trace context
const provider = TRACED
  ? require('./otel').setupTracing(`corpus-node-amqp-${ROLE}`, { inject: INJECTS })
  : null;

const amqp = require('amqplib');
const http = require('http');

const URL = process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672';
const P = 'corpus-node-amqp';
const CORRELATION = 'order-1001';
const RETRY_TTL_MS = 200;

// Exchanges, and the queues bound to them with their routing keys.
const EXCHANGES = {
  [`${P}.orders`]: 'fanout',
  [`${P}.payment.wait`]: 'fanout', // payment's dead-letter exchange: into the TTL queue
  [`${P}.payment.retry`]: 'fanout', // the TTL queue's dead-letter exchange: back to payment
  [`${P}.payments`]: 'direct',
  [`${P}.billing`]: 'direct',
  [`${P}.stock`]: 'direct',
  [`${P}.reports`]: 'direct',
};
const QUEUES = [
  { q: `${P}.payment`, ex: `${P}.orders`, rk: '', args: { 'x-dead-letter-exchange': `${P}.payment.wait` } },
  { q: `${P}.payment`, ex: `${P}.payment.retry`, rk: '' },
  {
    q: `${P}.payment.wait`, ex: `${P}.payment.wait`, rk: '',
    args: { 'x-message-ttl': RETRY_TTL_MS, 'x-dead-letter-exchange': `${P}.payment.retry` },
  },
  { q: `${P}.inventory`, ex: `${P}.orders`, rk: '' },
  { q: `${P}.summary`, ex: `${P}.orders`, rk: '' },
  { q: `${P}.shipping`, ex: `${P}.payments`, rk: 'payment.captured' },
  { q: `${P}.invoicing`, ex: `${P}.billing`, rk: 'invoice.requested' },
  { q: `${P}.warehouse`, ex: `${P}.stock`, rk: 'inventory.reserved' },
  { q: `${P}.audit`, ex: `${P}.stock`, rk: 'stock.audited' },
  { q: `${P}.reports`, ex: `${P}.reports`, rk: 'report.requested' }, // nobody consumes it
];

class TimeoutError extends Error {
  constructor(message) { super(message); this.name = 'TimeoutError'; }
}
class LockError extends Error {
  constructor(message) { super(message); this.name = 'LockError'; }
}

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (record) => process.stdout.write(`${JSON.stringify({ service: ROLE, t: now(), ...record })}\n`);

function publish(ch, label, exchange, routingKey, messageId) {
  log({ ev: 'publish', message: label, exchange, routing_key: routingKey, message_id: messageId });
  ch.publish(exchange, routingKey, Buffer.from(JSON.stringify({ label, order: CORRELATION })), {
    messageId, correlationId: CORRELATION, type: label, contentType: 'application/json', persistent: true,
  });
}

function deaths(msg, queue) {
  const xdeath = (msg.properties.headers || {})['x-death'] || [];
  return xdeath.filter((d) => d.queue === queue && d.reason === 'rejected')
    .reduce((n, d) => n + Number(d.count), 0);
}

// Runs one delivery's handler and logs what the broker showed and what the handler did.
async function handle(msg, queue, work) {
  const record = {
    ev: 'delivery', message: msg.properties.type, message_id: msg.properties.messageId, queue,
    exchange: msg.fields.exchange, redelivered: msg.fields.redelivered,
    delivery_tag: msg.fields.deliveryTag, x_death_rejected: deaths(msg, queue), start: now(),
  };
  try {
    await work(record);
    record.outcome = 'succeeded';
  } catch (err) {
    record.outcome = 'failed';
    record.error = err.name;
  }
  record.end = now();
  log(record);
  return record;
}

async function consumer(conn, queue, onMessage) {
  const ch = await conn.createChannel();
  await ch.prefetch(1);
  await ch.consume(queue, (msg) => onMessage(ch, msg));
  return ch;
}

const ROLES = {
  async setup(conn) {
    const ch = await conn.createChannel();
    const names = [...new Set(QUEUES.map(({ q }) => q))];
    for (const q of names) await ch.deleteQueue(q);
    for (const ex of Object.keys(EXCHANGES)) await ch.deleteExchange(ex);
    for (const [ex, type] of Object.entries(EXCHANGES)) await ch.assertExchange(ex, type, { durable: false });
    for (const q of names) {
      const args = QUEUES.find((entry) => entry.q === q && entry.args)?.args;
      await ch.assertQueue(q, { durable: false, arguments: args });
    }
    for (const { q, ex, rk } of QUEUES) await ch.bindQueue(q, ex, rk);
    const props = conn.connection.serverProperties;
    log({ ev: 'broker', product: props.product, version: props.version });
    await ch.close();
    return 'exit';
  },

  async inspect(conn) {
    const ch = await conn.createChannel();
    const depths = {};
    for (const { q } of QUEUES) depths[q] = (await ch.checkQueue(q)).messageCount; // eslint-disable-line no-await-in-loop
    log({ ev: 'depths', depths });
    await ch.close();
    return 'exit';
  },

  // POST /orders publishes order.placed (fan-out) and report.requested (nobody consumes it).
  async checkout(conn) {
    const ch = await conn.createChannel();
    const server = http.createServer((req, res) => {
      publish(ch, 'order.placed', `${P}.orders`, '', 'order-placed-1001');
      publish(ch, 'report.requested', `${P}.reports`, 'report.requested', 'report-requested-1001');
      res.writeHead(202, { 'content-type': 'application/json' });
      res.end('{"order":"order-1001"}');
    });
    await new Promise((resolve) => server.listen(Number(process.env.CHECKOUT_PORT), '127.0.0.1', resolve));
    return () => new Promise((resolve) => server.close(resolve));
  },

  // Dead-letter exchange + TTL retry queue: attempts 2 and 3 arrive via payment.retry.
  async payment(conn) {
    const out = await conn.createChannel();
    await consumer(conn, `${P}.payment`, async (ch, msg) => {
      const record = await handle(msg, `${P}.payment`, async (rec) => {
        await sleep(30);
        if (rec.x_death_rejected < 2) throw new TimeoutError('card gateway timed out');
        publish(out, 'payment.captured', `${P}.payments`, 'payment.captured', 'payment-captured-1001');
        // The publisher's confirm timed out, so it published the same message again.
        publish(out, 'invoice.requested', `${P}.billing`, 'invoice.requested', 'invoice-requested-1001');
        await sleep(20);
        publish(out, 'invoice.requested', `${P}.billing`, 'invoice.requested', 'invoice-requested-1001');
      });
      if (record.outcome === 'failed') ch.nack(msg, false, false); else ch.ack(msg);
    });
  },

  // Broker requeue: nack with requeue, the broker redelivers with redelivered=true.
  async inventory(conn) {
    const out = await conn.createChannel();
    await consumer(conn, `${P}.inventory`, async (ch, msg) => {
      const record = await handle(msg, `${P}.inventory`, async (rec) => {
        await sleep(25);
        if (!rec.redelivered) throw new LockError('stock row locked');
        publish(out, 'inventory.reserved', `${P}.stock`, 'inventory.reserved', 'inventory-reserved-1001');
      });
      if (record.outcome === 'failed') ch.nack(msg, false, true); else ch.ack(msg);
    });
  },

  // A lagging consumer of order.placed: it starts consuming only when make.py sends
  // SIGUSR2, well after its siblings have processed the order.
  async summary(conn) {
    process.once('SIGUSR2', () => consumer(conn, `${P}.summary`, async (ch, msg) => {
      await handle(msg, `${P}.summary`, () => sleep(15));
      ch.ack(msg);
    }));
  },

  // Processes payment.captured, then its channel drops before the ack: the broker
  // redelivers and the shipment is processed a second time (a duplicate delivery).
  async shipping(conn) {
    let first = true;
    const onMessage = async (ch, msg) => {
      await handle(msg, `${P}.shipping`, () => sleep(40));
      if (first) {
        first = false;
        await ch.close();
        await consumer(conn, `${P}.shipping`, onMessage);
      } else {
        ch.ack(msg);
      }
    };
    await consumer(conn, `${P}.shipping`, onMessage);
  },

  async invoicing(conn) {
    await consumer(conn, `${P}.invoicing`, async (ch, msg) => {
      await handle(msg, `${P}.invoicing`, () => sleep(20));
      ch.ack(msg);
    });
  },

  // Publishes stock.audited without trace context (its propagator never injects), then
  // does the longest piece of work in the workflow.
  async warehouse(conn) {
    const out = await conn.createChannel();
    await consumer(conn, `${P}.warehouse`, async (ch, msg) => {
      await handle(msg, `${P}.warehouse`, async () => {
        await sleep(20);
        publish(out, 'stock.audited', `${P}.stock`, 'stock.audited', 'stock-audited-1001');
        await sleep(2500);
      });
      ch.ack(msg);
    });
  },

  async audit(conn) {
    await consumer(conn, `${P}.audit`, async (ch, msg) => {
      await handle(msg, `${P}.audit`, () => sleep(10));
      ch.ack(msg);
    });
  },
};

async function main() {
  if (!ROLES[ROLE]) throw new Error(`unknown role ${ROLE}; one of ${Object.keys(ROLES).join(', ')}`);
  const conn = await amqp.connect(URL);
  const stop = await ROLES[ROLE](conn);
  if (stop === 'exit') {
    await conn.close();
    return;
  }
  log({ ev: 'ready' });
  process.once('SIGTERM', async () => {
    if (typeof stop === 'function') await stop();
    await conn.close();
    await provider.shutdown();
    log({ ev: 'stopped' });
    process.exit(0);
  });
}

main().catch((err) => {
  process.stderr.write(`${ROLE}: ${err.stack}\n`);
  process.exit(1);
});
