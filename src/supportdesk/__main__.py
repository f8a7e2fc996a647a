from supportdesk.cli.main import app

app(prog_name="supportdesk")
