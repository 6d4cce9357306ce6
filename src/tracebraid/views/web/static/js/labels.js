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

/** The event's name, else "message to <destination> → <steps that took it>". */
export function eventLabel(eventName, destination, steps = []) {
  if (eventName) return eventName;
  const where = destinationLabel(destination);
  const taken = [...new Set(steps.filter(Boolean))].join(", ");
  const label = where ? `message to ${where}` : "message";
  return taken ? `${label} → ${taken}` : label;
}

/** A consumer group name as recorded; destinations used as names read like one. */
export function consumerLabel(consumer) {
  return consumer && consumer.includes(",") ? destinationLabel(consumer) : consumer;
}

/**
 * Titles that repeat among siblings get their consumer added: two identical
 * "orders receive · event" rows become "... · inventory" and "... · shipping".
 * `items` have {title, consumer, group}; returns the titles to show, in order.
 */
export function disambiguate(items) {
  const seen = new Map();
  for (const item of items) {
    const key = `${item.group}\u0000${item.title}`;
    seen.set(key, (seen.get(key) || 0) + 1);
  }
  return items.map((item) => {
    const repeated = seen.get(`${item.group}\u0000${item.title}`) > 1;
    return repeated && item.consumer && item.consumer !== item.title ? `${item.title} · ${consumerLabel(item.consumer)}` : item.title;
  });
}
