"""The `kapal` command: Heroku's words (`topic:command`), talking only HTTP to the API.

Building blocks for command modules (see kapal.cli.main for how topics are registered):
`CliEnv`/`pass_env`/`app_option` (kapal.cli.context), `CliError` (kapal.cli.errors),
`action`/`hexagon`/`echo_header`/`key_values` (kapal.cli.output).
"""
