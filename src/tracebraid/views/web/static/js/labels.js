// Labels that read like the business, by the rules of tracebraid.views.labels (the
// CLI's): aio-pika's "exchange,routing_key" destinations as "exchange → routing key",
// an unnamed event called by where it went and who took it, and rows that would read
// the same told apart by their consumer.

/** "webhooks,order.shipped" -> "webhooks → order.shipped"; "orders," -> "orders". */
export function destinationLabel(destination) {
  if (destination === null || destination === undefined || !destination.includes(",")) return destination;
  const at = destination.indexOf(",");
  const exchange = destination.slice(0, at).trim() || "(default exchange)";
  const key = destination.slice(at + 1).split(",").find((part) => part.trim());
  return key ? `${exchange} → ${key.trim()}` : exchange;
}

/** Any "exchange,routing_key" word of a text read as one destination ("orders,x receive"). */
export function tidy(text) {
  if (!text || !text.includes(",")) return text;
  return text.split(" ").map((word) => (word.includes(",") ? destinationLabel(word) : word)).join(" ");
}

/** A step named after its destination ("orders,order.placed receive") with it read as one. */
export function stepLabel(step, destination) {
  if (!step || !destination) return step;
  if (destination.includes(",") && step.includes(destination)) {
    return step.replace(destination, destinationLabel(destination));
  }
  // The destination may be the exchange alone while the span name keeps both.
  const space = step.indexOf(" ");
  const first = space < 0 ? step : step.slice(0, space);
  if (!first.startsWith(`${destination},`)) return step;
  return destinationLabel(first) + (space < 0 ? "" : step.slice(space));
}

/** The event's name, else "message to <destination> → <steps that took it>". */
export function eventLabel(eventName, destination, steps = []) {
  if (eventName) return eventName;
  const where = destinationLabel(destination);
  const taken = [...new Set(steps.filter(Boolean))].join(", ");
  const label = where ? `message to ${where}` : "message";
  return taken ? `${label} → ${taken}` : label;
}

/**
 * A consumer as recorded, its destination read as one: "notifier:webhooks,," (a service
 * and the queue it reads, when no group is recorded) -> "notifier on webhooks".
 */
export function consumerLabel(consumer) {
  if (!consumer || !consumer.includes(",")) return consumer;
  const at = consumer.indexOf(":");
  if (at > 0 && !consumer.slice(0, at).includes(",")) {
    return `${consumer.slice(0, at)} on ${destinationLabel(consumer.slice(at + 1))}`;
  }
  return destinationLabel(consumer);
}

/**
 * Titles that repeat among siblings get their consumer added: two identical
 * "orders receive · event" rows become "... · inventory" and "... · shipping".
 * `items` have {title, consumer, service, group}; returns the titles to show, in order.
 * The service tells them apart when it differs, else the consumer's own name.
 */
export function disambiguate(items) {
  const seen = new Map();
  for (const item of items) {
    const key = `${item.group}\u0000${item.title}`;
    if (!seen.has(key)) seen.set(key, []);
    seen.get(key).push(item);
  }
  return items.map((item) => {
    const same = seen.get(`${item.group}\u0000${item.title}`);
    if (same.length < 2 || !item.consumer) return item.title;
    const services = new Set(same.map((i) => i.service));
    const by = services.size === same.length && item.service ? item.service : consumerLabel(item.consumer);
    return `${item.title} · ${by}`;
  });
}
