"""The operator console: admin API, dashboard, wallet safety (refresh, sweeps, exits) and alerts."""
