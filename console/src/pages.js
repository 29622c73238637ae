// The console's pages, by the name in the address (#/cluster, #/streams/NAME, ...). Each
// page names the feed's sections it shows, builds what stays (forms, players) on `enter`,
// redraws its tables on `update`, and stops what it started on `leave`.

import { cluster } from "./pages/cluster.js";
import { streams } from "./pages/streams.js";
import { releases } from "./pages/releases.js";
import { vod } from "./pages/vod.js";
import { access } from "./pages/access.js";
import { alerts } from "./pages/alerts.js";

export const pages = { cluster, streams, releases, vod, access, alerts };
