from cluster_pipeline.cli import main

raise SystemExit(main())
