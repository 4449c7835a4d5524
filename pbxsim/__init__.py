"""The PBX simulator: Asterisk 22's side of FastAGI and AMI."""
