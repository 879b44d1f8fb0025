// The Node.js echo handler of bench/emulator_vs_offline.py, run on both emulators: the AWS
// SDK for JavaScript v3 @connections client made at load (the runtime provides the SDK under
// warmline dev; serverless-offline resolves it from this folder's node_modules), then one
// PostToConnection per message. WS_MGMT_ENDPOINT points it at the emulator's @connections
// endpoint. One ANCHOR_INIT line per load counts cold starts on serverless-offline.
'use strict';

const {
  ApiGatewayManagementApiClient,
  PostToConnectionCommand,
} = require('@aws-sdk/client-apigatewaymanagementapi');

console.error(`ANCHOR_INIT node pid=${process.pid}`);

const client = new ApiGatewayManagementApiClient({
  endpoint: process.env.WS_MGMT_ENDPOINT || 'http://localhost:3001',
  region: 'us-east-1',
  // The execution role's keys, as Lambda (and warmline dev) set them; serverless-offline
  // checks none, so any stand-in does there.
  credentials: {
    accessKeyId: process.env.AWS_ACCESS_KEY_ID || 'offline',
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY || 'offline',
    sessionToken: process.env.AWS_SESSION_TOKEN,
  },
});

exports.handler = async (event) => {
  const { routeKey, connectionId } = event.requestContext;
  if (routeKey === '$connect' || routeKey === '$disconnect') return { statusCode: 200 };
  await client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: event.body || '' }));
  return { statusCode: 200 };
};
