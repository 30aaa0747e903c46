/** The engine's version, as /version and /info report it. */
export const BERTH_VERSION = '0.1.0';
