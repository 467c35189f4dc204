// Express 4 is installed as the npm alias `express4` so the HTTP suite runs against both majors; its API surface
// used by the tests (app, json(), Router) is typed like Express 5's.
declare module 'express4' {
  import express from 'express';
  export = express;
}
