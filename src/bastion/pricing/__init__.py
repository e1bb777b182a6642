"""The model catalog as data and cost in integer micro-dollars."""
