"""`bastion eval`: suites of cases run through the gateway, graded, stored, and compared with
gates that decide whether a model change may go ahead (checklist item 16)."""
