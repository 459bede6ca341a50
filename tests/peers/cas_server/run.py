"""Start the CAS peer (settings.py): ``python run.py <settings.json>``.

Creates its database and its users (password ``password`` of each entry of
``users``), then serves on 127.0.0.1:<port> until killed, printing
"listening" once ready."""

import json
import os
import sys
from pathlib import Path


def main() -> None:
    settings_file = Path(sys.argv[1]).resolve()
    os.environ["CAS_PEER_SETTINGS"] = str(settings_file)
    os.environ["DJANGO_SETTINGS_MODULE"] = "cas_server.settings"
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    peer = json.loads(settings_file.read_text())
    call_command("migrate", verbosity=0)
    for name, account in peer["users"].items():
        user, _ = User.objects.get_or_create(username=name)
        user.email = account.get("email", "")
        user.set_password(account["password"])
        user.save()
    print("listening", flush=True)
    call_command("runserver", f"127.0.0.1:{peer['port']}", use_reloader=False, verbosity=0)


if __name__ == "__main__":
    main()
