'use strict';
// One service of the node-kafkajs scenario per process: `node scenario.js <role>`.
// Every service logs what it did (sends with the offsets the broker returned, deliveries
// with their topic/partition/offset, handler outcomes) as JSON lines on stdout; make.py
// derives truth.json from those lines and the broker's offsets, never from the spans.
// `setup` and `inspect` run without tracing (topics, high watermarks, group offsets).

const ROLE = process.argv[2];
const TRACED = !['setup', 'inspect'].includes(ROLE);
const INJECTS = ROLE !== 'warehouse'; // the warehouse publishes without trace context
const provider = TRACED
  ? require('./otel').setupTracing(`corpus-node-kafka-${ROLE}`, { inject: INJECTS })
  : null;

const { Kafka, logLevel } = require('kafkajs');
const http = require('http');

const BROKER = process.env.KAFKA_BROKER || '127.0.0.1:29092';
const P = 'corpus-node-kafka';
const ORDER = 'order-1001'; // every record's key: the order it belongs to
const T = {
  orders: `${P}.orders`,
  inventoryRetry: `${P}.orders.inventory-retry`,
  payments: `${P}.payments`,
  invoices: `${P}.invoices`,
  stock: `${P}.stock`,
  audit: `${P}.audit`,
  reports: `${P}.reports`, // nobody consumes it
};
const INVENTORY_RETRY_DELAY_MS = 300;

class TimeoutError extends Error {
  constructor(message) { super(message); this.name = 'TimeoutError'; }
}
class LockError extends Error {
  constructor(message) { super(message); this.name = 'LockError'; }
}

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (record) => process.stdout.write(`${JSON.stringify({ service: ROLE, t: now(), ...record })}\n`);
// kafkajs logs to the console by default; its lines go to stderr so stdout stays JSON.
const logCreator = () => ({ namespace, log: entry }) => {
  process.stderr.write(`${ROLE} kafkajs ${namespace}: ${entry.message}\n`);
};

const kafka = new Kafka({
  clientId: `${P}-${ROLE}`, brokers: [BROKER], logLevel: logLevel.ERROR, logCreator,
});

// Sends one record and logs where the broker put it (topic/partition@offset).
async function send(producer, label, topic, messageId, headers = {}, ev = 'publish') {
  const t = now();
  const [meta] = await producer.send({
    topic,
    messages: [{
      key: ORDER,
      value: JSON.stringify({ label, order: ORDER }),
      headers: { 'message-type': label, 'message-id': messageId, ...headers },
    }],
  });
  log({
    ev, message: label, topic, message_id: messageId, t,
    partition: meta.partition, offset: meta.baseOffset,
  });
}

// Runs one delivery's handler and logs what the broker delivered and what the handler did.
async function handle(topic, partition, message, work) {
  const headers = message.headers || {};
  const record = {
    ev: 'delivery', message: String(headers['message-type']), message_id: String(headers['message-id']),
    topic, partition, offset: message.offset, attempt_header: headers['x-attempt'] ? Number(String(headers['x-attempt'])) : 1,
    start: now(),
  };
  let failure;
  try {
    await work(record);
    record.outcome = 'succeeded';
  } catch (err) {
    record.outcome = 'failed';
    record.error = err.name;
    failure = err;
  }
  record.end = now();
  log(record);
  if (failure) throw Object.assign(failure, { handled: record }); // the handler's own error
  return record;
}

async function startConsumer(topics, options, run) {
  const consumer = kafka.consumer({
    groupId: `${P}.${ROLE}`, maxWaitTimeInMs: 100, retry: { initialRetryTime: 200, retries: 8 },
    ...options,
  });
  await consumer.connect();
  for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: true });
  await run(consumer);
  return consumer;
}

// Resolves once the consumer has joined its group (so make.py knows it is consuming).
const joined = (consumer) => new Promise((resolve) => {
  consumer.on(consumer.events.GROUP_JOIN, () => resolve());
});

const ROLES = {
  async setup() {
    const admin = kafka.admin();
    await admin.connect();
    const existing = await admin.listTopics();
    const ours = Object.values(T).filter((topic) => existing.includes(topic));
    if (ours.length) await admin.deleteTopics({ topics: ours });
    await admin.createTopics({
      topics: Object.values(T).map((topic) => ({ topic, numPartitions: 1, replicationFactor: 1 })),
      waitForLeaders: true,
    });
    const cluster = await admin.describeCluster();
    log({ ev: 'broker', cluster_id: cluster.clusterId, brokers: cluster.brokers.length });
    await admin.disconnect();
    return 'exit';
  },

  async inspect() {
    const admin = kafka.admin();
    await admin.connect();
    const watermarks = {};
    for (const topic of Object.values(T)) {
      watermarks[topic] = (await admin.fetchTopicOffsets(topic)).map((p) => Number(p.high));
    }
    log({ ev: 'watermarks', watermarks });
    await admin.disconnect();
    return 'exit';
  },

  // POST /orders sends order.placed (fan-out) and report.requested (nobody consumes it).
  async checkout() {
    const producer = kafka.producer();
    await producer.connect();
    const server = http.createServer(async (req, res) => {
      await send(producer, 'order.placed', T.orders, 'order-placed-1001');
      await send(producer, 'report.requested', T.reports, 'report-requested-1001');
      res.writeHead(202, { 'content-type': 'application/json' });
      res.end('{"order":"order-1001"}');
    });
    await new Promise((resolve) => server.listen(Number(process.env.CHECKOUT_PORT), '127.0.0.1', resolve));
    return async () => {
      await new Promise((resolve) => server.close(resolve));
      await producer.disconnect();
    };
  },

  // Seek-back: a throwing eachMessage makes kafkajs fetch the same offset again.
  async payment() {
    const producer = kafka.producer();
    await producer.connect();
    let failures = 0;
    const consumer = await startConsumer([T.orders], {}, async (c) => {
      const ready = joined(c);
      await c.run({
        eachMessage: ({ topic, partition, message }) => handle(topic, partition, message, async () => {
          await sleep(30);
          if (failures < 2) {
            failures += 1;
            throw new TimeoutError('card gateway timed out');
          }
          await send(producer, 'payment.captured', T.payments, 'payment-captured-1001');
          // The first send's acknowledgement timed out, so the same invoice request is sent again.
          await send(producer, 'invoice.requested', T.invoices, 'invoice-requested-1001');
          await send(producer, 'invoice.requested', T.invoices, 'invoice-requested-1001');
        }),
      });
      await ready;
    });
    return async () => { await consumer.disconnect(); await producer.disconnect(); };
  },

  // Retry topic: a failed record is sent to the inventory retry topic with x-attempt 2,
  // the same key and message-id; the same service consumes it there after a delay.
  async inventory() {
    const producer = kafka.producer();
    await producer.connect();
    const consumer = await startConsumer([T.orders, T.inventoryRetry], {}, async (c) => {
      const ready = joined(c);
      await c.run({
        eachMessage: async ({ topic, partition, message }) => {
          try {
            await handle(topic, partition, message, async (rec) => {
              if (topic === T.inventoryRetry) await sleep(INVENTORY_RETRY_DELAY_MS);
              await sleep(25);
              if (rec.attempt_header < 2) throw new LockError('stock row locked');
              await send(producer, 'inventory.reserved', T.stock, 'inventory-reserved-1001');
            });
          } catch (err) {
            if (!err.handled) throw err;
            const headers = { ...message.headers, 'x-attempt': String(err.handled.attempt_header + 1) };
            await send(
              producer, String(headers['message-type']), T.inventoryRetry, String(headers['message-id']),
              headers, 'retry-publish',
            );
          }
        },
      });
      await ready;
    });
    return async () => { await consumer.disconnect(); await producer.disconnect(); };
  },

  // A lagging consumer of order.placed: it joins its group at once but pauses the topic
  // (it is empty then) until make.py sends SIGUSR2, long after its siblings processed it.
  async summary() {
    const consumer = await startConsumer([T.orders], {}, async (c) => {
      const ready = joined(c);
      await c.run({
        eachMessage: ({ topic, partition, message }) => handle(topic, partition, message, () => sleep(15)),
      });
      await ready;
      c.pause([{ topic: T.orders }]);
      process.once('SIGUSR2', () => c.resume([{ topic: T.orders }]));
    });
    return () => consumer.disconnect();
  },

  // Processes payment.captured, then its consumer is reset to that record's offset before
  // the offset is committed (what a rebalance or a restart before the commit does): the
  // same offset is fetched and processed again.
  async shipping() {
    let first = true;
    const consumer = await startConsumer([T.payments], {}, async (c) => {
      const ready = joined(c);
      await c.run({
        eachMessage: async ({ topic, partition, message }) => {
          await handle(topic, partition, message, () => sleep(40));
          if (first) {
            first = false;
            c.seek({ topic, partition, offset: message.offset });
          }
        },
      });
      await ready;
    });
    return () => consumer.disconnect();
  },

  // A batch consumer: eachBatch makes a poll span with a process span per record.
  async invoicing() {
    const consumer = await startConsumer([T.invoices], {}, async (c) => {
      const ready = joined(c);
      await c.run({
        eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
          for (const message of batch.messages) {
            await handle(batch.topic, batch.partition, message, () => sleep(20));
            resolveOffset(message.offset);
          }
          await heartbeat();
        },
      });
      await ready;
    });
    return () => consumer.disconnect();
  },

  // Sends stock.audited without trace context (its propagator never injects), then does
  // the longest piece of work in the workflow.
  async warehouse() {
    const producer = kafka.producer();
    await producer.connect();
    const consumer = await startConsumer([T.stock], {}, async (c) => {
      const ready = joined(c);
      await c.run({
        eachMessage: ({ topic, partition, message }) => handle(topic, partition, message, async () => {
          await sleep(20);
          await send(producer, 'stock.audited', T.audit, 'stock-audited-1001');
          await sleep(2500);
        }),
      });
      await ready;
    });
    return async () => { await consumer.disconnect(); await producer.disconnect(); };
  },

  async audit() {
    const consumer = await startConsumer([T.audit], {}, async (c) => {
      const ready = joined(c);
      await c.run({
        eachMessage: ({ topic, partition, message }) => handle(topic, partition, message, () => sleep(10)),
      });
      await ready;
    });
    return () => consumer.disconnect();
  },
};

async function main() {
  if (!ROLES[ROLE]) throw new Error(`unknown role ${ROLE}; one of ${Object.keys(ROLES).join(', ')}`);
  const stop = await ROLES[ROLE]();
  if (stop === 'exit') return;
  log({ ev: 'ready' });
  process.once('SIGTERM', async () => {
    await stop();
    await provider.shutdown();
    log({ ev: 'stopped' });
    process.exit(0);
  });
}

main().catch((err) => {
  process.stderr.write(`${ROLE}: ${err.stack}\n`);
  process.exit(1);
});
