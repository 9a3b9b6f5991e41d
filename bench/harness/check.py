"""Correctness check of the counters after a variant has run, stored with the samples."""

from . import log, server
from .samples import Samples


def counters(samples: Samples, context: str, variant: str, search_path: str | None = None) -> None:
    """The extension checks itself (verify_campaign_counters()); floor and the peers are compared with
    a recount (bench.drift); none keeps no counters."""
    if variant == "none":
        return
    if variant in ("campaign_counters", "deferred"):  # verify counts pending changes in deferred mode
        sql = "SELECT count(*) FROM campaign_counters.verify_campaign_counters(NULL, 'marketing_campaigns'::regclass)"
        result = f"verify_campaign_counters(): {server.query(sql, search_path)} rows"
    else:
        sql = "SELECT bench.drift('campaign_recipients', 'marketing_campaigns')"
        result = f"campaigns whose counters differ from a recount: {server.query(sql, search_path)}"
    log.info(f"check {context} / {variant}: {result}")
    samples.add("check", result, context=context, variant=variant)
