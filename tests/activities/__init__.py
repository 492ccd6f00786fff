"""Tests of activities/: the business systems, their adapters and look-ups."""
