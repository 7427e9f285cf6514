"""What is reported: ``results.json`` (schema, environment, baselines), the HTML report and the
table of the source report's ambiguities."""
