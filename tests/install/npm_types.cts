// Type-checked (tsc --noEmit) against the installed package's types, as CommonJS.
import fairsem = require('fairsem');

const version: string = fairsem.version;
export = version;
