"""Prints the streams a TRex STL profile gives, as the JSON the TRex client sends
to the server (base frame in base64 and field-engine program), through TRex's
own client library (PyPI: lbr-trex-client). The end-to-end tests replay it.

    python streams_json.py perf/trex/weir_l4.py --vip 198.18.0.200 --flows 3000
"""

import json
import sys

import lbr_trex_client  # noqa: F401  (puts TRex's packages on sys.path)
from trex.stl.api import STLProfile

profile = STLProfile.load_py(sys.argv[1], tunables=sys.argv[2:])
if profile is None:  # the profile refused its tunables (argparse said why)
    sys.exit(2)
print(json.dumps([s.to_json() for s in profile.get_streams()]))
