"""`bastion audit`: scan an application's tree, git history and bundles for Claude API hazards.

Read in this order: rules (the catalog of what is reported) → findings (the finding model) →
scan (what is scanned where) → the per-language checks → allowlist → the reporters.
"""
