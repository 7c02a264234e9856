"""Renewal: the unattended job, its due rules, declared certificates, explanations, metrics and the timer."""
