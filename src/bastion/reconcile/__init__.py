"""`bastion reconcile`: Bastion's request log against Anthropic's own usage and cost reports.

`provider` reads the Admin API's reports into totals per day and model, `compare` sets them
beside the log's and names each gap, and `bastion.cli.reconcile` prints the verdict.
"""
