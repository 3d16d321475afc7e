import sys
from pathlib import Path

# tests/ on the path so that configs can name `fake_judges:optimist` as a judge function.
sys.path.insert(0, str(Path(__file__).parent))
