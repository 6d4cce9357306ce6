'use strict';
// Stock OpenTelemetry set-up for one service of the scenario: a NodeTracerProvider with
// its own service.name, the stock OTLP/HTTP (JSON) exporter and the stock http and
// kafkajs instrumentations with their default configuration. Nothing here adds attributes
// or spans.
//
// `inject: false` gives the service a propagator that extracts but never injects: the
// service publishes without carrying the trace context (the scenario's propagation break),
// while its own spans are still recorded as the instrumentation makes them.

const { propagation } = require('@opentelemetry/api');
const { W3CTraceContextPropagator } = require('@opentelemetry/core');
const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { KafkaJsInstrumentation } = require('@opentelemetry/instrumentation-kafkajs');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');

class ExtractOnlyPropagator {
  constructor() {
    this.w3c = new W3CTraceContextPropagator();
  }
  inject() {}
  extract(context, carrier, getter) {
    return this.w3c.extract(context, carrier, getter);
  }
  fields() {
    return this.w3c.fields();
  }
}

function setupTracing(serviceName, { inject = true } = {}) {
  const endpoint = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint) throw new Error('OTEL_EXPORTER_OTLP_ENDPOINT is not set');
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    spanProcessors: [
      new BatchSpanProcessor(new OTLPTraceExporter({ url: `${endpoint}/v1/traces` }), {
        scheduledDelayMillis: 200,
      }),
    ],
  });
  provider.register(inject ? {} : { propagator: null });
  if (!inject) propagation.setGlobalPropagator(new ExtractOnlyPropagator());
  registerInstrumentations({ instrumentations: [new HttpInstrumentation(), new KafkaJsInstrumentation()] });
  return provider;
}

module.exports = { setupTracing };
