/** The options of `fleetwire sim`, for the usage text; apart from src/demo so `--help` loads no simulator. */
export const simulatorUsage = `[--host 127.0.0.1] [--samsara-port 8081] [--geotab-port 8082]
              [--traccar-port 8083] [--tesla-port 8084] [--vehicles 25] [--time-scale 5]`;
