"""The workloads, each a function of (context, running registry) returning a JSON-able dict."""
