"""Agent evaluations: scenario files, a simulated caller, judges, text and audio runs, reports."""
