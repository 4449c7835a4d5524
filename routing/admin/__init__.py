"""Editing the ACD's groups, operators and group schedules while it runs.

- ``service.py``    `AcdAdmin`: the one edit path (validate, check against the running ACD,
                    audit, write atomically, keep versions, apply)
- ``yaml_edit.py``  YAML text surgery: one entry replaced, the rest of the file kept as written
- ``errors.py``     `EditRefused` and the validators' file:line errors pointed at a field
- ``reload.py``     `HandEditWatcher`: hand edits of the files picked up while running
- ``http.py``       the admin HTTP API (`add_admin_routes`)
"""
