"""The five measured workloads; each stores its raw samples and checks the counters after each variant."""
