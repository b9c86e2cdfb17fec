from c2e_core.cli import main

raise SystemExit(main())
