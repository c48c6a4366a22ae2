"""Ways in: the command line, and (later) the HTTP API, Slack and the inbox. The outermost layer:
it builds the dependencies (settings, database, clock, adapters) and passes them down. Only this
package knows about HTTP, terminals and processes."""
