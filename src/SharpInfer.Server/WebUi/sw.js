// SharpInfer's web page needs no offline cache: this service worker only takes control, so browsers that installed
// the page as an app (manifest.webmanifest) keep loading it from the server.
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', event => event.waitUntil(self.clients.claim()));
