"""arkgate: pay-per-call API gateway funded by Lightning or Ark through barkd."""
