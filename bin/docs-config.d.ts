/** The markdown of docs/configuration.md for a JSON Schema of `.plangate.yml`. */
export function configReference(schema: object): string;
